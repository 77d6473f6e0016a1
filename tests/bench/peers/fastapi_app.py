"""FastAPI peer for tests/bench/http_bench.py, served by uvicorn (1 worker).

The same route the deckhand benchmark hits: GET /livez -> {"status":"pass"}.
"""
from fastapi import FastAPI

app = FastAPI()


@app.get("/livez")
async def livez():
    return {"status": "pass"}
