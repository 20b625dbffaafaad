"""The pure core shared by the trainer, the replay and the stream worker.

Nothing here imports Faust or a Kafka client: feature definitions, the
model-space transform, assignment, hysteresis and drift statistics are plain
code, so every path that uses them computes the same thing.
"""
