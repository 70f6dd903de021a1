"""GRPO: group-relative advantages, the policy loss and per-token log-probs (pure math), and the loop."""
