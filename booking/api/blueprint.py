"""The API's blueprint: flask-smorest's, with a request parser that does per request only
what the request needs.

webargs makes a new instance of an argument schema given as a class on every request
(marshmallow deep-copies every declared field into it), and parses a JSON body from its
bytes once more after the guards have (booking.http.guards). This parser makes the instance
once, when the view is declared, and takes the body the guards read, when its bytes were
UTF-8 as webargs would read them; anything else it reads as webargs does.
"""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
from marshmallow import Schema
from webargs.flaskparser import FlaskParser, is_json_request

from booking.http.guards import utf8_json_body


class Parser(FlaskParser):
    def use_args(self, argmap: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(argmap, type) and issubclass(argmap, Schema):
            argmap = argmap()  # loading keeps no state in the schema: one serves every request
        return super().use_args(argmap, *args, **kwargs)

    def load_json(self, req: flask.Request, schema: Schema) -> Any:
        read = utf8_json_body() if is_json_request(req) else None
        return super().load_json(req, schema) if read is None else read.value


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = Parser()
