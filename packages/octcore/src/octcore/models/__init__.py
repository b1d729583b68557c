"""Model families. Built in: ``cnn1d`` (alias ``test``)."""
