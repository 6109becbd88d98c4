"""Infra stays in step with the app: settings, queues, tables, module wiring, roles, secrets and alerts.

No Bicep compiler is available here, so the files are parsed with pycep (a Bicep grammar) and checked
for what the compiler or a failed deployment would otherwise tell us late.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
from pycep import BicepParser
from pydantic import TypeAdapter

from shared.queues import APP_QUEUES, POISON_SUFFIX
from shared.settings import Settings, app_setting_names

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

SECRET_PARAMS = (
    "ghlClientSecret",
    "ghlPrivateToken",
    "rv3SqlUrl",
    "manychatApiKeys",
    "odooApiKey",
    "consoleSigningKey",
)
TOKEN_AND_RATE_TABLES = {"ghltokens", "ghlratebudget", "locks"}
ALERT_KINDS = {
    "poison_message",
    "webhook_failure",
    "token_refresh_failed",
    "rate_headroom_low",
    "reconciliation_drift",
    "reconciliation_missed",
    "manychat_event_lost",
    "odoo_sync_failed",
    "odoo_auth_failed",
    "rv3_status_unmapped",
    "rv3_status_missing",
}


# Shared keys are disabled, so the host and the app reach storage with the identity-based form.
IDENTITY_STORAGE_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
}
# Read by the Functions host itself (telemetry with local auth disabled), not by the app's settings.
# Read by the Functions host or the Python worker, not by the app.
HOST_ONLY_SETTINGS = {
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "PYTHON_THREADPOOL_THREAD_COUNT",
    "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT",
}

BROAD_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",  # Owner
    "b24988ac-6180-42a0-ab88-20f7382dd24c",  # Contributor
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",  # User Access Administrator
    "17d1049b-9a84-46fb-8f53-869881c3d3ab",  # Storage Account Contributor
    "00482a5a-887f-4fb3-b363-3b7fe8e74483",  # Key Vault Administrator
}


@cache
def bicep(relative: str) -> dict[str, Any]:
    return dict(BicepParser().parse(file_path=INFRA / relative))


def module_params(module: dict[str, Any]) -> dict[str, Any]:
    """The params object of a module call, looking through `for` loops and `if` conditions."""
    config = module["config"]
    while "params" not in config:
        config = config["config"]
    params: dict[str, Any] = config["params"]
    return params


def modules_of(relative: str, registry_path: str) -> list[dict[str, Any]]:
    modules = bicep(relative).get("modules", {}).values()
    return [module for module in modules if module["detail"].get("path") == registry_path]


def function_app() -> dict[str, Any]:
    (site,) = modules_of("app/api.bicep", "avm/res/web/site")
    return module_params(site)


def deployed_app_settings() -> dict[str, Any]:
    (appsettings,) = [c for c in function_app()["configs"] if c["name"] == "appsettings"]
    settings: dict[str, Any] = bicep("app/api.bicep")["variables"][appsettings["properties"]]["value"]
    return settings


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Path) -> None:
    assert BicepParser().parse(file_path=path)


def test_deployed_app_settings_are_exactly_the_settings_the_app_reads() -> None:
    expected = app_setting_names()
    deployed = set(deployed_app_settings()) - HOST_ONLY_SETTINGS

    if "AzureWebJobsStorage" in expected:
        expected = (expected - {"AzureWebJobsStorage"}) | IDENTITY_STORAGE_SETTINGS
    # Flex Consumption rejects FUNCTIONS_WORKER_RUNTIME as an app setting; the runtime block carries it.
    assert "FUNCTIONS_WORKER_RUNTIME" not in deployed
    assert function_app()["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    expected -= {"FUNCTIONS_WORKER_RUNTIME"}

    assert deployed == expected, {"missing": expected - deployed, "unexpected": deployed - expected}


def test_storage_is_reached_with_the_app_identity_only() -> None:
    (storage,) = modules_of("main.bicep", "avm/res/storage/storage-account")
    assert module_params(storage)["allowSharedKeyAccess"] is False
    settings = deployed_app_settings()
    assert "AzureWebJobsStorage" not in settings
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    deployment = function_app()["functionAppConfig"]["deployment"]["storage"]
    assert deployment["authentication"]["type"] == "UserAssignedIdentity"


def test_every_app_queue_and_its_poison_queue_is_created() -> None:
    variables = bicep("main.bicep")["variables"]
    app_queues = variables["appQueues"]["value"]
    poison = variables["poisonQueues"]["value"]
    assert poison["loop_type"]["detail"]["array_name"] == "appQueues"
    item = poison["loop_type"]["detail"]["item_name"]
    poison_queues = [poison["config"].replace(f"${{{item}}}", queue) for queue in app_queues]
    (storage,) = modules_of("main.bicep", "avm/res/storage/storage-account")
    created_from = module_params(storage)["queueServices"]["queues"]["loop_type"]["detail"]["array_name"]
    assert created_from["function"] == {"type": "concat", "parameters": {"arg_1": "appQueues", "arg_2": "poisonQueues"}}

    expected = {name for queue in APP_QUEUES for name in (queue, f"{queue}{POISON_SUFFIX}")}
    created = set(app_queues) | set(poison_queues)
    assert created == expected, {"missing": expected - created, "unexpected": created - expected}


def test_token_rate_budget_and_lock_tables_are_created() -> None:
    assert set(bicep("main.bicep")["variables"]["appTables"]["value"]) == TOKEN_AND_RATE_TABLES


def test_secrets_reach_the_app_only_as_key_vault_references() -> None:
    main = bicep("main.bicep")
    for secret_param in SECRET_PARAMS:
        assert {"type": "secure"} in main["parameters"][secret_param]["decorators"]
    assert main["functions"]["keyVaultReference"]["expression"].startswith("@Microsoft.KeyVault(SecretUri=")
    # Written only when given, so a value set later in the vault survives the next provision.
    (vault,) = modules_of("main.bicep", "avm/res/key-vault/vault")
    written: dict[str, str] = {}
    for entry in module_params(vault)["secrets"]["function"]["parameters"].values():
        when = entry["operator"]["operands"]
        (secret,) = when["false_value"]
        assert when["condition"]["function"] == {"type": "empty", "parameters": {"item_to_test": secret["value"]}}
        written[secret["value"]] = secret["name"]["operator"]["operands"]["operand_2"]
    assert written == {secret_param: secret_param for secret_param in SECRET_PARAMS}

    settings = deployed_app_settings()
    assert settings["GHL_CLIENT_SECRET"] == "ghlClientSecretReference"
    assert settings["GHL_PRIVATE_TOKEN"] == "ghlPrivateTokenReference"
    assert settings["RV3_SQL_URL"] == "rv3SqlUrlReference"
    assert settings["MANYCHAT_API_KEYS"] == "manychatApiKeysReference"
    assert settings["ODOO_API_KEY"] == "odooApiKeyReference"
    assert settings["CONSOLE_SIGNING_KEY"] == "consoleSigningKeyReference"
    assert settings["CONSOLE_DEV_SIGNIN"] == "false"
    api_params = module_params(main["modules"]["api"])
    assert api_params["ghlClientSecretReference"]["function"]["type"] == "keyVaultReference"
    assert api_params["consoleSigningKeyReference"]["function"]["type"] == "keyVaultReference"
    for optional in (
        "ghlPrivateTokenReference",
        "rv3SqlUrlReference",
        "manychatApiKeysReference",
        "odooApiKeyReference",
    ):
        assert api_params[optional]["operator"]["operands"]["false_value"]["function"]["type"] == ("keyVaultReference")
    assert function_app()["keyVaultAccessIdentityResourceId"] == "identityId"


def test_tunables_deploy_with_the_app_defaults_and_choices() -> None:
    main = bicep("main.bicep")
    api_params = bicep("app/api.bicep")["parameters"]
    passed = module_params(main["modules"]["api"])
    fields = {field.alias: field for field in Settings.model_fields.values()}
    checked: set[str] = set()
    for setting, value in deployed_app_settings().items():
        # A setting deployed from a main.bicep parameter with a default of its own (empty = the app's default).
        main_param = passed.get(value) if isinstance(value, str) and value in api_params else None
        if not isinstance(main_param, str) or main_param not in main["parameters"]:
            continue
        param = main["parameters"][main_param]
        if not param["default"]:
            continue
        field = fields[setting]
        annotation: Any = field.annotation
        assert TypeAdapter(annotation).validate_python(param["default"]) == field.default, setting
        allowed = [d["argument"] for d in param["decorators"] if d["type"] == "allowed"]
        if get_origin(annotation) is Literal:
            assert allowed and set(allowed[0]) == set(get_args(annotation)), setting
        checked.add(setting)
    odoo_tunables = {"ODOO_PROTOCOL", "ODOO_SYNC", "ODOO_RATE_PER_S", "ODOO_LEAD_TYPE", "ODOO_RECONCILE_SCHEDULE"}
    assert {"TIMEZONE", "RECONCILE_SCHEDULE", "MANYCHAT_TIMEZONE", *odoo_tunables} <= checked


def test_sql_is_serverless_entra_only_and_reached_with_a_token() -> None:
    (server,) = modules_of("app/sql.bicep", "avm/res/sql/server")
    params = module_params(server)
    assert params["administrators"]["azureADOnlyAuthentication"] is True
    (database,) = params["databases"]
    assert database["sku"]["name"] == "GP_S_Gen5"
    assert database["autoPauseDelay"] == "autoPauseDelayMinutes"

    api = bicep("app/api.bicep")
    sql_url = api["variables"]["sqlUrl"]["value"]
    assert sql_url.startswith("mssql+pyodbc://@${sqlServerFqdn}:1433/${sqlDatabaseName}?")
    assert "driver=${replace(sqlOdbcDriver, ' ', '+')}" in sql_url
    assert "Encrypt=yes" in sql_url
    assert api["parameters"]["sqlOdbcDriver"]["default"] == "ODBC Driver 18 for SQL Server"
    assert deployed_app_settings()["SQL_AUTH"] == "entra"


def test_app_identity_gets_data_roles_and_nothing_broader() -> None:
    rbac_text = (INFRA / "app/rbac.bicep").read_text()
    role_ids = set(re.findall(r"'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'", rbac_text))
    assert role_ids.isdisjoint(BROAD_ROLES)
    assert {
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",  # Storage Queue Data Contributor
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
        "3913510d-42f4-4e42-8a64-420c390055eb",  # Monitoring Metrics Publisher
        "4633458b-17de-408a-b874-0445c86b69e6",  # Key Vault Secrets User
    } <= role_ids


def test_every_alert_kind_has_a_rule_validation_spikes_and_missed_runs_too() -> None:
    alerts = bicep("app/alerts.bicep")
    kinds = {alert["kind"] for alert in alerts["variables"]["eventAlerts"]["value"]}
    assert kinds == ALERT_KINDS
    spike = module_params(alerts["modules"]["validationSpikeRule"])
    (criterion,) = spike["criterias"]["allOf"]
    assert '"validation.rejected"' in criterion["query"]
    assert criterion["operator"] == "GreaterThan" and spike["windowSize"] == "PT15M"
    heartbeat = module_params(alerts["modules"]["reconciliationHeartbeatRule"])
    (criterion,) = heartbeat["criterias"]["allOf"]
    assert '"reconciliation.completed"' in criterion["query"]
    assert (criterion["operator"], criterion["threshold"]) == ("LessThan", 1)


def test_every_alert_the_app_raises_is_one_of_the_kinds_with_a_rule() -> None:
    raised = {
        kind
        for path in (REPO / "shared").rglob("*.py")
        for kind in re.findall(r'telemetry\.alert\(\s*"([a-z_]+)"', path.read_text(encoding="utf-8"))
    }
    assert raised and raised <= ALERT_KINDS, raised - ALERT_KINDS


@pytest.mark.parametrize("relative", ["main.bicep", "app/api.bicep", "app/alerts.bicep", "app/sql.bicep"])
def test_local_module_calls_pass_declared_parameters_and_use_declared_outputs(relative: str) -> None:
    caller = bicep(relative)
    text = (INFRA / relative).read_text()
    local_modules = {
        symbol: module for symbol, module in caller.get("modules", {}).items() if module["type"] == "local"
    }
    for symbol, module in local_modules.items():
        callee_path = str(Path(relative).parent / module["detail"]["path"])
        callee = bicep(callee_path)
        declared = callee["parameters"]
        passed = set(module_params(module))
        required = {name for name, p in declared.items() if p["default"] is None}
        assert passed <= set(declared), (symbol, passed - set(declared))
        assert required <= passed, (symbol, required - passed)
        used_outputs = set(re.findall(rf"\b{symbol}!?\.outputs\.(\w+)", text))
        assert used_outputs <= set(callee.get("outputs", {})), (symbol, used_outputs)


def test_parameters_file_maps_only_declared_parameters() -> None:
    declared = bicep("main.bicep")["parameters"]
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(mapped) <= set(declared)
    assert {name for name, p in declared.items() if p["default"] is None} <= set(mapped)
    # An azd environment variable left unset falls back to the same default main.bicep declares.
    for name, entry in mapped.items():
        fallback = re.fullmatch(r"\$\{\w+=(.*)\}", entry["value"])
        if fallback and declared[name]["default"] is not None:
            assert fallback[1] == declared[name]["default"], name


def test_postprovision_hook_script_exists_and_is_executable() -> None:
    azure_yaml = (REPO / "azure.yaml").read_text()
    (script,) = re.findall(r"run: \./(\S+)", azure_yaml)
    assert os.access(REPO / script, os.X_OK)
    assert "host: function" in azure_yaml
    assert "language: python" in azure_yaml


def test_the_host_refuses_bodies_far_larger_than_any_the_app_takes() -> None:
    limit = int(deployed_app_settings()["FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"])
    assert 64 * 1024 < limit <= 1024 * 1024


def test_the_console_sits_behind_app_service_authentication_that_lets_the_api_and_webhooks_through() -> None:
    main = bicep("main.bicep")
    (module,) = [m for m in main["modules"].values() if m["detail"]["path"] == "app/console-auth.bicep"]
    assert module_params(module)["clientId"] == "consoleAuthClientId"
    auth = (INFRA / "app/console-auth.bicep").read_text()
    # Nothing but the console needs an Entra sign-in: the API has its function keys, GHL and ManyChat their own.
    assert "requireAuthentication: false" in auth and "unauthenticatedClientAction: 'AllowAnonymous'" in auth
    assert "name: 'authsettingsV2'" in auth and "azureActiveDirectory" in auth
    assert "requireHttps: true" in auth
    registration = (INFRA / "scripts/console-app-registration.sh").read_text()
    assert os.access(INFRA / "scripts/console-app-registration.sh", os.X_OK)
    from shared.console.auth import OPERATOR_ROLE, VIEWER_ROLE

    for role in (OPERATOR_ROLE, VIEWER_ROLE):
        assert f'"value": "{role}"' in registration
    assert "appRoleAssignmentRequired=true" in registration
    assert "/.auth/login/aad/callback" in registration


def test_the_workbook_shows_calls_alerts_drift_poison_and_failures_over_the_app_s_own_events() -> None:
    workbook = bicep("app/workbook.bicep")
    resource = workbook["resources"]["workbook"]
    assert resource["type"] == "Microsoft.Insights/workbooks"
    assert resource["config"]["kind"] == "shared" and resource["config"]["properties"]["category"] == "workbook"
    queries = " ".join(item["content"]["query"] for item in workbook["variables"]["eventItems"]["value"])
    text = (INFRA / "app/workbook.bicep").read_text()
    # The events the app logs (shared/telemetry, the reconciliation worker, the queue triggers), read as the alerts do.
    for event in ('"reconciliation.completed"', '"alert.poison_message"', '"alert.rate_headroom_low"', '"alert."'):
        assert event in queries, event
    assert "dependencies | where name startswith" in text and "'GHL '" in text and "'Odoo '" in text
    assert bicep("app/alerts.bicep")["variables"]["appEvents"] == workbook["variables"]["appEvents"]
    wired = module_params(bicep("main.bicep")["modules"]["workbook"])
    assert "monitoring" in json.dumps(wired["applicationInsightsId"])
