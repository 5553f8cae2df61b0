"""Generated Python stubs of the wire contract ``proto/lvss/v1/vectorizer.proto`` (package lvss.v1).

Do not edit the ``*_pb2*`` files by hand: change the .proto and run ``python proto/generate.py``.
Import the modules directly::

    from lvss._proto import vectorizer_pb2 as pb, vectorizer_pb2_grpc as pb_grpc

Nothing is imported here, so ``import lvss`` never pulls in protobuf or grpc.
"""
