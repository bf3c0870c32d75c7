"""The PromQL subset our alert rules are written in: parser, store and evaluator."""
