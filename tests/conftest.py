# The PyTorch twins need torch, which CI does not install: CI compares with their recorded AUCs.
collect_ignore = ["reference/torch_models.py"]
