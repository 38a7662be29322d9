"""Editorial actions fed by the usage log: proposed 相似问, adopting them, articles due for review."""
