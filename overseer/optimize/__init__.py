"""The learning loop: labelled pool, optimizer, learner."""
