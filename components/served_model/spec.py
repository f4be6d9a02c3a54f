"""Names shared by ServedModel, its executor, the ModelEvaluator, the Trainer module and the tests."""

# ServedModel parameters and channels.
BASE_DIRECTORY_KEY = "base_directory"
MODEL_NAME_KEY = "model_name"
EXAMPLES_KEY = "examples"
MODEL_KEY = "model"

# Custom properties of the output Model artifact.
FOUND = "found"  # 1 when a served version was found and copied, else 0 (the artifact is empty).
SERVED_VERSION = "served_version"
SERVED_PATH = "served_path"
SOURCE_MODEL = "source_model"  # The Trainer output the served version was pushed from.
