"""Semantic device and model management (docs/semantic.md).

Devices are described as W3C Web of Things Thing Descriptions 1.1 (td.py), boards as
Thing Models (tm.py), both in JSON-LD with the project's own vocabulary (vocabulary.py),
turned into RDF offline (contexts.py), checked with SHACL (validate.py), kept in a fleet
registry (store.py: an embedded pyoxigraph store on disk, or any SPARQL 1.1 endpoint)
and asked ready-made questions (queries.py; memory figures for `--fits` from figures.py).
The gateway (gateway.py) serves the devices attached to this host as Things over HTTP;
every access to a device goes through device.py.
"""
