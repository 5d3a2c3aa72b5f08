"""GenericExecutor that hands run_fn the frozen SID artifacts' URIs (through custom_config) and
tolerates spans without interactions: ExampleGen writes no split for an empty span, so a step on
it trains on nothing (run_fn carries the base model over) and says so, rather than failing.

The output model records the spans it was trained on, for the span-aware resolvers
(components/resolvers.py): int custom property `span`, the last one, `backfill` 1 when trained on a
backfill (a SID refresh's warm-up), and string `trained_spans`,
the first and the last, e.g. "17590", "17588..17590" or "backfill..17589". A split `span_N` is
span N, a split `backfill` comes before every span, and any other split (the daily ingestion's one
split) is the examples artifact's own `span` property.
"""

from typing import Any, Dict, List, Tuple

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.components.trainer import fn_args_utils
from tfx.proto import trainer_pb2
from tfx.components.util import udf_utils
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components.resolvers import BACKFILL, SPAN
from formats import feature_state, spans
from formats.artifacts import EMBEDDINGS, MODEL_KIND, PREVIOUS, RANKING, RETRIEVAL, SEMANTIC_IDS, VOCABULARY
from models import distribution

# The frozen RQ-VAE, bundled into the serving model: unknown items' SIDs from their content vectors.
SID_ENCODER = "sid_encoder"
# The feature state after the trained span: the serving model's snapshot of the counters.
FEATURE_STATE = "feature_state"
# The SIDs and vocabulary a base model was trained on, when a SID refresh remaps it onto new ones.
PREVIOUS_SEMANTIC_IDS, PREVIOUS_VOCABULARY = PREVIOUS + SEMANTIC_IDS, PREVIOUS + VOCABULARY
_ARGS = {standard_component_specs.TRAIN_ARGS_KEY: trainer_pb2.TrainArgs,
         standard_component_specs.EVAL_ARGS_KEY: trainer_pb2.EvalArgs}
TRAINED_SPANS = "trained_spans"
RETRIEVAL_RUN_FN = "models.retrieval.trainer.run_fn"


def model_kind(run_fn: str) -> str:
  return RETRIEVAL if run_fn == RETRIEVAL_RUN_FN else RANKING
BACKFILL_SPLIT = "backfill"


def trained_spans(examples: types.Artifact, train_splits: List[str]) -> Tuple[int, str]:
  """(last span, description) of a step on `train_splits`; a backfill alone is span -1, before all."""
  numbered = sorted({spans.span_of_split(s) if s.startswith("span_") else examples.span
                     for s in train_splits if s != BACKFILL_SPLIT})
  parts = ([BACKFILL_SPLIT] if BACKFILL_SPLIT in train_splits else []) + [str(n) for n in numbered]
  last = numbered[-1] if numbered else -1
  return last, parts[0] if len(parts) == 1 else f"{parts[0]}..{parts[-1]}"


class Executor(trainer_executor.GenericExecutor):

  def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    if not distribution.is_chief():
      # A cluster worker other than the chief trains its share and writes no output (models/distribution.py):
      # the base class's check that the model was written is the chief's.
      udf_utils.get_fn(exec_properties, "run_fn")(self._GetFnArgs(input_dict, output_dict, exec_properties))
      return
    super().Do(input_dict, output_dict, exec_properties)
    train_args = proto_utils.json_to_proto(exec_properties[standard_component_specs.TRAIN_ARGS_KEY],
                                           trainer_pb2.TrainArgs())
    examples = artifact_utils.get_single_instance(input_dict[standard_component_specs.EXAMPLES_KEY])
    last, description = trained_spans(examples, list(train_args.splits))
    model = artifact_utils.get_single_instance(output_dict[standard_component_specs.MODEL_KEY])
    model.set_int_custom_property(SPAN, last)
    if examples.has_custom_property(BACKFILL):
      model.set_int_custom_property(BACKFILL, examples.get_int_custom_property(BACKFILL))
    model.set_string_custom_property(TRAINED_SPANS, description)
    model.set_string_custom_property(MODEL_KIND, model_kind(exec_properties[standard_component_specs.RUN_FN_KEY]))

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
           for key in (SEMANTIC_IDS, VOCABULARY, EMBEDDINGS, SID_ENCODER, FEATURE_STATE, PREVIOUS_SEMANTIC_IDS,
                       PREVIOUS_VOCABULARY)
           if input_dict.get(key)},
    }
    for key, prefix in ((SEMANTIC_IDS, ""), (PREVIOUS_SEMANTIC_IDS, PREVIOUS)):
      if input_dict.get(key):
        sids = artifact_utils.get_single_instance(input_dict[key])
        fn_args.custom_config[f"{prefix}codebook_size"] = sids.get_int_custom_property("codebook_size")
    if input_dict.get(FEATURE_STATE):
      # What the counters' snapshot decays its counters with, to the start of the span after the state's.
      state = artifact_utils.get_single_instance(input_dict[FEATURE_STATE])
      fn_args.custom_config["feature_state_properties"] = feature_state.properties(state)
    return fn_args
