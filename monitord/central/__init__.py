"""The incident store and the central service the on-call team works from."""
