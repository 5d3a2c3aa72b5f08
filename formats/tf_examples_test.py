import tensorflow as tf

from formats import tf_examples


def test_example_holds_each_feature_of_its_kind_empty_lists_included():
  record = tf_examples.example(int64s={"user_id": [7], "history": []}, floats={"rating": [4.5]},
                               strings={"genres": [], "title": ["Amélie (2001)"]})
  expected = tf.train.Example(features=tf.train.Features(feature={
      "user_id": tf.train.Feature(int64_list=tf.train.Int64List(value=[7])),
      "history": tf.train.Feature(int64_list=tf.train.Int64List(value=[])),
      "rating": tf.train.Feature(float_list=tf.train.FloatList(value=[4.5])),
      "genres": tf.train.Feature(bytes_list=tf.train.BytesList(value=[])),
      "title": tf.train.Feature(bytes_list=tf.train.BytesList(value=["Amélie (2001)".encode()]))}))
  assert record == expected
  assert tf.train.Example.FromString(record.SerializeToString()) == expected
  assert record.features.feature["history"].WhichOneof("kind") == "int64_list"
