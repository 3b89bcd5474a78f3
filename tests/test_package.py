import affgraph


def test_version_and_modules():
    assert affgraph.__version__ == "0.1.0"
    assert hasattr(affgraph, "functional") and hasattr(affgraph, "nn")
