"""Flask peer for tests/bench/http_bench.py, served by gunicorn (2 sync workers).

The same route the deckhand benchmark hits: GET /livez -> {"status":"pass"}.
"""
from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/livez")
def livez():
    return jsonify(status="pass")
