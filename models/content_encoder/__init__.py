# The content encoder's model name on the model server, where the pipeline pushes it beside the ranking model.
SERVED_MODEL_NAME = "content_encoder"
