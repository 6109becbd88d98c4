"""Azure Functions entry point: the one FunctionApp the worker indexes; triggers live in blueprints/."""

import azure.functions as func

from blueprints import health, oauth

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health.bp)
app.register_functions(oauth.bp)
