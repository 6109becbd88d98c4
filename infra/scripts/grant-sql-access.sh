#!/bin/sh
# azd postprovision hook: grants the app's managed identity access to the Azure SQL database.
# Needs go-sqlcmd (https://aka.ms/go-sqlcmd) signed in through azd/az, and this machine's IP in the
# SQL firewall (azd env set SQL_CLIENT_IP <ip>; azd provision). Without them it prints the manual steps.
set -eu

script_dir=$(cd "$(dirname "$0")" && pwd)
sql_file="$script_dir/grant-sql-access.sql"

server=$(azd env get-value AZURE_SQL_SERVER_FQDN)
database=$(azd env get-value AZURE_SQL_DATABASE_NAME)
identity_name=$(azd env get-value APP_IDENTITY_NAME)
identity_object_id=$(azd env get-value APP_IDENTITY_PRINCIPAL_ID)

manual_steps() {
  cat <<STEPS
No se pudo dar acceso a la base de datos automáticamente. Hágalo una vez, como administrador Entra del
servidor, en el editor de consultas del portal (base de datos $database) o con sqlcmd:

  sqlcmd -S $server -d $database --authentication-method ActiveDirectoryDefault \\
    -v APP_IDENTITY_NAME=$identity_name APP_IDENTITY_OBJECT_ID=$identity_object_id -i $sql_file

STEPS
  sed -e "s/\$(APP_IDENTITY_NAME)/$identity_name/g" -e "s/\$(APP_IDENTITY_OBJECT_ID)/$identity_object_id/g" "$sql_file"
}

if ! command -v sqlcmd >/dev/null 2>&1; then
  manual_steps
  exit 1
fi

if sqlcmd -S "$server" -d "$database" --authentication-method ActiveDirectoryDefault -b \
  -v APP_IDENTITY_NAME="$identity_name" APP_IDENTITY_OBJECT_ID="$identity_object_id" -i "$sql_file"; then
  echo "Acceso a SQL concedido a $identity_name en $database."
else
  manual_steps
  exit 1
fi
