"""The story the user runs on the embedded cluster: `trustusbank demo` and `act N`.

- `acts`: the three acts (1 clean converter, no defence; 2 rug pull: same tag, new bytes,
  no defence; 3 rug pull with the defence set on), each asking support-bot the seed's
  question through the chatbot.
- `changes`: each act's change to the running system, the act scripts themselves
  (`reset`, `upgrade-banking-app`), called in-process.
- `receipts`: what each act leaves behind, read where an auditor would read it (the
  image behind the tag, denies from the evidence store, alerts and their mail), as
  typed records that are also the `--json` document.
- `verdict`: whether the acts told the story, one rule per claim.
- `cluster`: the running cluster and its front doors, started if need be.
- `followups`: the runbook's follow-on demos (`trustusbank demo trace`, `live-policy`, ...).
- `bench`: `trustusbank bench attacks`, the defences scored AgentDojo-style.
"""
