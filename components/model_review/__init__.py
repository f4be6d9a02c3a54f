"""ModelReview: the model's review page, beside the data-validation report."""
