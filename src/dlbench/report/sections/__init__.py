"""The report's sections, one module each: sweeps (with their test-image samples), parameter counts,
recorded figures, environment. Each turns collected results into blocks."""
