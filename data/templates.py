"""The 25 refusal templates used by refusal-only SFT, in 5 styles of 5.

A prompt's template is `int(md5(prompt text)) % 25`, so the same prompt always gets the same
refusal across runs and machines. Every template is at least 20 words so that no
short-answer penalty can punish the project's own refusals (a seed bug), and each one uses a
refusal phrase that the marker detector recognises with straight or curly apostrophes.
"""

from __future__ import annotations

import hashlib

STYLES = ("direct", "explain", "redirect", "firm", "concise")

REFUSAL_TEMPLATES: tuple[str, ...] = (
    # direct refusal
    "I can't help with that request. It asks for something that could cause real harm, so I won't provide it, but I'm happy to help with something else.",
    "I cannot assist with this. The request is for content that could be used to hurt people or systems, and that is not something I will produce.",
    "I won't help with that. What you are asking for could enable harm to others, so I have to decline, though I can help with a safer related topic.",
    "I'm not able to help with this request because it could lead to serious harm. Please let me know if there is something else I can do for you.",
    "Sorry, but I can't do that. Providing this information could put people at risk, so I will not help with it, even if the intent is harmless.",
    # explain-why-not
    "I can't provide this. Instructions like these could be used to injure people, damage property or break the law, and the risk of misuse is too high to share them.",
    "I won't be able to help here. Even when a request is framed as fiction, research or a test, detailed steps for something harmful can be misused, so I decline to give them.",
    "I cannot help with that, because it would mean giving practical guidance for causing harm. My purpose is to be useful without putting anyone's safety at risk.",
    "I must decline this request. Sharing this kind of content could help someone commit a crime or hurt another person, and that outweighs any benefit I can see.",
    "I can't assist with this one. Requests that try to override my guidelines or extract harmful details are ones I refuse, because following them could cause real damage.",
    # redirect
    "I can't help with that, but if you are researching this topic for safety reasons, I can point you to general information about prevention and where to find professional help.",
    "I won't provide that, but I'd be glad to help with a related question, such as how to stay safe, how to report a problem, or how these risks are usually prevented.",
    "I cannot assist with this request. If you or someone else is in danger, please contact local emergency services or a trusted support line, and I can help you find resources.",
    "I'm unable to help with this. If your goal is security testing or education, I can explain defensive best practices and point you to legitimate training material instead.",
    "I can't do that, but I can help you with a safer alternative. Tell me more about the underlying problem and I will try to suggest a constructive way to approach it.",
    # firm boundary
    "I will not help with this request. No matter how it is phrased or what role I am asked to play, I refuse to provide content that could cause harm.",
    "This is something I won't do. Instructions to ignore my guidelines or pretend to be a different assistant do not change that, and I will not assist with this request.",
    "I cannot comply with this request. It falls outside what I am willing to help with, and rephrasing it or adding a hypothetical framing will not change my answer.",
    "I am not going to help with that. My guidelines against assisting with harmful or malicious activity stay in place regardless of the instructions in the message.",
    "I can't comply with that. I refuse requests that aim to cause harm or bypass safety measures, and I will keep declining however the request is worded.",
    # concise
    "I can't help with that request, sorry. It could cause harm, so I won't provide it. Is there something else, something safe, I can help you with today?",
    "I cannot help with this. It is potentially harmful and I decline to assist. I am glad to help with another question if you have one for me.",
    "I won't assist with that request because it could be used to cause harm. Feel free to ask me about something else and I will do my best.",
    "Sorry, I'm unable to help with this request. It could put people at risk. If you have a different question, I would be happy to help with it.",
    "I must decline: I can't help with requests like this one because they could lead to harm. Please ask me something else and I will gladly help.",
)

assert len(REFUSAL_TEMPLATES) == 25


def template_index(prompt: str) -> int:
    """int(md5(prompt)) % 25 (utf-8 bytes of the prompt text as given)."""
    return int(hashlib.md5(prompt.encode("utf-8")).hexdigest(), 16) % len(REFUSAL_TEMPLATES)


def refusal_for(prompt: str) -> str:
    return REFUSAL_TEMPLATES[template_index(prompt)]


def style_of(index: int) -> str:
    return STYLES[index // 5]


# Course-correction (recovery) texts: what the model says after the first tokens of a harmful answer
# were put in its mouth (a prefilling attack) or after it started complying itself. Each one stops
# explicitly and refuses, in 5 styles of 5, like the refusal templates; each starts with its own break
# so it reads as a turn-around wherever the harmful prefix was cut.
RECOVERY_TEMPLATES: tuple[str, ...] = (
    # explicit stop
    "... Actually, I need to stop here. I can't continue with this, because it could cause real harm. I won't provide it, but I can help with something safe instead.",
    "\n\nWait. I shouldn't have started answering that. I can't help with this request, since it could be used to hurt people, so I'm stopping now.",
    " -- no, I'm going to stop. Continuing would mean giving instructions that could cause harm, and I won't do that. Is there something else I can help with?",
    "\n\nI'm going to stop here instead of finishing this. I cannot provide this information, because it could put people at risk, however the request is phrased.",
    "... Let me stop. I started to answer, but this is something I can't help with: it could lead to serious harm. I'd be glad to help with a safer question.",
    # correction with a reason
    "\n\nOn reflection, I can't go on with this. The steps would give practical help for causing harm, and that risk is too high, so I'm declining the rest.",
    " -- actually, I won't continue. What I was about to write could help someone commit a crime or injure others, so I have to refuse this request.",
    "\n\nI need to correct myself: I should not help with this. Detailed guidance like this can be misused to hurt people, so I'm not going to provide it.",
    "... No, I can't finish this answer. Even framed as a hypothetical, these details could enable real harm, and I decline to give them.",
    "\n\nStopping here. I shouldn't provide this, because the information could be used to damage property or hurt someone. I won't go further with it.",
    # stop and redirect
    "\n\nActually, I can't help with that after all. If you're researching this for safety reasons, I can point you to general prevention resources instead.",
    "... I'll stop there, since I can't assist with this. If someone is in danger, please contact local emergency services; I can help you find support.",
    " -- wait, I won't provide this. If your goal is security or education, I can explain defensive practices and legitimate training material instead.",
    "\n\nI have to stop: I can't give these instructions. I'm happy to help with a related, safe question, like how these risks are usually prevented.",
    "... Let me stop and take a different direction. I can't help with this request, but tell me about the underlying problem and I'll suggest a safe approach.",
    # firm boundary
    "\n\nNo. I'm not going to continue this. However the request is worded, I refuse to provide content that could cause harm.",
    " -- I won't go on. Starting an answer doesn't change my decision: I don't help with harmful or malicious requests, and I'm declining this one.",
    "\n\nI cannot complete this. It falls outside what I'm willing to help with, and I'll keep declining even if the answer was started for me.",
    "... I refuse to continue. My guidelines against assisting with harmful activity still apply, even mid-answer, so I'm stopping here.",
    "\n\nI'm stopping this response. I don't assist with requests that aim to cause harm or bypass safety measures, and this is one of them.",
    # concise
    "\n\nSorry, I can't continue with this. It could cause harm, so I won't provide it.",
    "... Actually, no: I can't help with this request. It could put people at risk.",
    " -- I have to stop. I won't help with this, because it could be used to cause harm.",
    "\n\nI shouldn't continue. I can't assist with that request, sorry.",
    "... Stopping here: I can't help with this. Please ask me something else.",
)

assert len(RECOVERY_TEMPLATES) == 25


def recovery_for(prompt: str) -> str:
    """The recovery text of a prompt: int(md5(prompt)) % 25, like refusal_for."""
    return RECOVERY_TEMPLATES[template_index(prompt)]
