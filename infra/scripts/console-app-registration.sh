#!/bin/sh
# Creates (or updates) the Entra app registration staff sign in to the operations console with, and prints the
# client id to give the deployment: azd env set CONSOLE_AUTH_CLIENT_ID <id>; azd provision.
#
# It declares the app roles the console reads (Console.Operator: retry, heal, replay, resolve; Console.Viewer: look
# only), the sign-in callback of App Service Authentication, and ID tokens (the implicit flow: no client secret).
# Assign staff to a role in Entra ID > Enterprise applications > <name> > Users and groups; "Assignment required"
# is switched on, so nobody without a role can sign in. Needs the Azure CLI signed in with rights to create apps.
set -eu

app_uri=${1:-$(azd env get-value SERVICE_API_URI)}
name=${2:-"Consola rv3-ghl-sync"}

roles=$(cat <<JSON
[
  {"allowedMemberTypes": ["User"], "displayName": "Operador de la consola", "isEnabled": true,
   "description": "Consulta y actúa: reintentar citas, resolver reservas, reenviar mensajes, corregir conciliaciones.",
   "value": "Console.Operator", "id": "6f1f1f0e-6b0e-4f54-9a53-3c0b5a2f7e01"},
  {"allowedMemberTypes": ["User"], "displayName": "Lector de la consola", "isEnabled": true,
   "description": "Solo consulta la consola.",
   "value": "Console.Viewer", "id": "6f1f1f0e-6b0e-4f54-9a53-3c0b5a2f7e02"}
]
JSON
)

client_id=$(az ad app list --display-name "$name" --query "[0].appId" -o tsv)
if [ -z "$client_id" ]; then
  client_id=$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg --query appId -o tsv)
fi
az ad app update --id "$client_id" \
  --web-redirect-uris "$app_uri/.auth/login/aad/callback" \
  --enable-id-token-issuance true \
  --app-roles "$roles" \
  --identifier-uris "api://$client_id"
az ad sp show --id "$client_id" >/dev/null 2>&1 || az ad sp create --id "$client_id" >/dev/null
az ad sp update --id "$client_id" --set appRoleAssignmentRequired=true

echo "CONSOLE_AUTH_CLIENT_ID=$client_id"
echo "Siguiente paso: azd env set CONSOLE_AUTH_CLIENT_ID $client_id && azd provision"
