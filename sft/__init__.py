"""SFT: the masked completion loss (pure math) and the loop."""
