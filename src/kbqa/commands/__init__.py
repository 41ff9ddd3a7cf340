"""The command groups of `kbqa` beyond the everyday ones in kbqa.cli: eval, tune, token."""
