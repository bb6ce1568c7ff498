"""Example run configs and the custom program module they name (`examples.programs`)."""
