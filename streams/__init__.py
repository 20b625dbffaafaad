"""The stream processor: Faust agents at the edge around the pure scoring core."""
