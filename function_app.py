"""Azure Functions entry point: the one FunctionApp the worker indexes; triggers live in blueprints/."""

import azure.functions as func

from blueprints import (
    citas,
    console,
    docs,
    fallback,
    health,
    locations,
    manychat,
    metrics,
    miasalud_api,
    miasalud_odoo,
    oauth,
    reconcile,
    rv3,
    sync,
    webhooks,
)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health.bp)
app.register_functions(locations.bp)
app.register_functions(docs.bp)
app.register_functions(citas.bp)
app.register_functions(sync.bp)
app.register_functions(oauth.bp)
app.register_functions(webhooks.bp)
app.register_functions(metrics.bp)
app.register_functions(rv3.bp)
app.register_functions(reconcile.bp)
# MiaSalud leads (ManyChat → SQL → Odoo), on when MANYCHAT_API_KEYS is set.
app.register_functions(manychat.bp)
app.register_functions(miasalud_api.bp)
app.register_functions(miasalud_odoo.bp)
# The operations console: Spanish pages for staff, signed in with Entra ID (App Service Authentication).
app.register_functions(console.bp)
# Last: the route every path no other route serves falls through to.
app.register_functions(fallback.bp)
