"""Data: loading image datasets, caching them as arrays, and the on-device training data path."""
