# The content encoder's model name on the model server, where the pipeline pushes it beside the ranking model.
SERVED_MODEL_NAME = "content_encoder"
# Its serving_default signature: text [None] string -> embedding [None, 384] float32.
INPUT_KEY = "text"
OUTPUT_KEY = "embedding"
