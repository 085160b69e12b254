"""The agent: runner, evaluator, check state, scheduler and the daemon that ties them."""
