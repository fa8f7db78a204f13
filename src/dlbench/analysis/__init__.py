"""Studies that need no training: parameter counts, solving for a budget, kernels, equivariance."""
