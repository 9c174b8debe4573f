"""Readers of images that answer questions: the frozen critic, the ViLT critic, the rule and ViLT judges (notebook 04)."""
