"""GenericExecutor that hands run_fn the frozen SID artifacts' URIs (through custom_config) and
tolerates spans without interactions: ExampleGen writes no split for an empty span, so a step on
it trains on nothing (run_fn carries the base model over) and says so, rather than failing."""

from typing import Any, Dict, List

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.components.trainer import fn_args_utils
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

SEMANTIC_IDS, VOCABULARY, EMBEDDINGS = "semantic_ids", "vocabulary", "embeddings"
# The frozen RQ-VAE and content encoder, bundled into the serving model for unknown items.
SID_ENCODER, TEXT_ENCODER = "sid_encoder", "text_encoder"
_ARGS = {standard_component_specs.TRAIN_ARGS_KEY: trainer_pb2.TrainArgs,
         standard_component_specs.EVAL_ARGS_KEY: trainer_pb2.EvalArgs}


class Executor(trainer_executor.GenericExecutor):

  def _GetFnArgs(self, input_dict: Dict[str, List[types.Artifact]],
                 output_dict: Dict[str, List[types.Artifact]],
                 exec_properties: Dict[str, Any]) -> fn_args_utils.FnArgs:
    examples = input_dict[standard_component_specs.EXAMPLES_KEY]
    available = artifact_utils.decode_split_names(artifact_utils.get_single_instance(examples).split_names)
    present, missing, properties = {}, [], dict(exec_properties)
    for key, proto_type in _ARGS.items():
      wanted = list(proto_utils.json_to_proto(exec_properties[key], proto_type()).splits)
      present[key] = [s for s in wanted if s in available]
      missing += [s for s in wanted if s not in available]
      # The base class refuses absent splits; it is given a present one, and the files are set below.
      properties[key] = proto_utils.proto_to_json(proto_type(splits=present[key] or available[:1]))
    fn_args = super()._GetFnArgs(input_dict, output_dict, properties)
    patterns = lambda splits: [io_utils.all_files_pattern(artifact_utils.get_split_uri(examples, s))
                               for s in splits]
    fn_args.train_files = patterns(present[standard_component_specs.TRAIN_ARGS_KEY])
    fn_args.eval_files = patterns(present[standard_component_specs.EVAL_ARGS_KEY])
    fn_args.custom_config = {
        **(fn_args.custom_config or {}), "missing_splits": missing,
        **{f"{key}_uri": artifact_utils.get_single_uri(input_dict[key])
           for key in (SEMANTIC_IDS, VOCABULARY, EMBEDDINGS, SID_ENCODER, TEXT_ENCODER) if input_dict.get(key)},
    }
    return fn_args
