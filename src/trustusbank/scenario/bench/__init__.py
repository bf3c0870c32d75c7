"""`trustusbank bench attacks`: the runtime's defences scored the way AgentDojo scores a model's.

- `tasks`: the bank's user tasks and the attacker's injection tasks, each with its check;
- `attacks`: AgentDojo's own attack wordings, read from the installed package;
- `defences`: the cumulative defence levels and the files that make each;
- `harness`: the bench's own cluster, one cell (one prompt) at a time, with its receipts;
- `score`: utility, utility under attack, targeted ASR, and where attacks were stopped;
- `matrix`: which cells, in which order, and the report;
- `rate_limit`: the benchmarks' lift of deploy/'s account-route brake.
"""
