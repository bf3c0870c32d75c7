"""The scripted model: a SIMULATION of an LLM, deterministic, offline, no API key.

It is not a language model. It reads the request a real model would get (system
message, conversation, tools on offer) and follows written-down rules:

- It can plan for three roles, chosen by the tools on offer: a customer-support
  agent (balance, recent transactions, converting the balance to USD/EUR/JPY,
  the customer's masked profile, handing an unrecognised payment to a fraud
  agent), a fraud analyst (score recent transactions 0-100 by explainable rules,
  flag the risky ones, escalate above 70 to a triage agent) and a triage agent
  (open a DORA Art. 17 incident ticket, notify a human).
- It cannot hold a conversation, answer general questions, or plan anything its
  rules do not cover: it says what it can help with instead. It never raises.
- Every reply is PII-masked, whatever the system message says.
- Like real models, it can be prompt-injected: an instruction hidden in a tool
  result (the rug-pulled converter's `<system>` block) makes it fetch the full
  profile and pass it to the tool, while its reply to the customer stays the
  same. How often is its Gullibility: "always" by default, because the demo shows
  that the mesh must hold even when the model is fooled every time.

- Asked for `trustusbank-compromised` (or as `CompromisedModel`), it simulates a
  model that does whatever injected text asks: every non-JSON text in a tool result
  and every tool description is an order (`compromised.py`), while it still does
  the user's task. That is the attacks bench's upper bound: the runtime measured
  with no help from the model.

`ScriptedModel` implements `trustusbank.agents.model.types.ModelClient`;
`http_app` serves it as OpenAI- and Anthropic-compatible HTTP APIs.
"""
