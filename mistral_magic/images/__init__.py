"""Images: the attachment value type and Mistral's limits, where images come from (notebook values,
files, URLs, the last figure), and whether a model reads them."""
