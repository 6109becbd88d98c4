// rv3-ghl-sync on Azure: Flex Consumption function app, identity-only storage, serverless Azure SQL
// (Entra-only), Key Vault for the GHL, ManyChat and Odoo secrets, Application Insights + Log Analytics and alert rules.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; it also seeds the unique suffix of every resource name.')
param environmentName string

@minLength(1)
@description('Region for every resource. It must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of whoever runs azd (set by azd as AZURE_PRINCIPAL_ID). Default Azure SQL Entra admin.')
param principalId string = ''

@allowed(['User', 'ServicePrincipal', 'Group'])
@description('Kind of principalId (set by azd as AZURE_PRINCIPAL_TYPE).')
param principalType string = 'User'

@description('Object id of the Azure SQL Entra admin. Empty: the deployer (principalId). An Entra group is best.')
param sqlAdminObjectId string = ''

@description('Display name of the Azure SQL Entra admin (user, group or app name).')
param sqlAdminLogin string = 'rv3-ghl-sync-sql-admin'

@allowed(['', 'User', 'Group', 'Application'])
@description('Kind of sqlAdminObjectId. Empty: derived from principalType.')
param sqlAdminPrincipalType string = ''

@description('Public IP allowed through the SQL firewall to run migrations and the grant script. Empty: none.')
param sqlClientIpAddress string = ''

@description('ODBC driver named in SQL_URL. Check `pyodbc.drivers()` on the app if connections fail with "Can\'t open lib".')
param sqlOdbcDriver string = 'ODBC Driver 18 for SQL Server'

@allowed([1, 2, 4, 6, 8])
@description('Upper vCore bound of the serverless database.')
param sqlMaxVCores int = 2

@minValue(15)
@description('Minutes without connections before the serverless database pauses (and stops billing compute).')
param sqlAutoPauseDelayMinutes int = 60

@description('Client id of the GHL marketplace app (OAuth mode).')
param ghlClientId string = ''

@secure()
@description('Client secret of the GHL marketplace app. Stored in Key Vault; the app reads it through a reference.')
param ghlClientSecret string = ''

@secure()
@description('GHL private integration token (single-location mode, no OAuth). Stored in Key Vault when given.')
param ghlPrivateToken string = ''

@description('GHL location id for the single-location private integration mode.')
param ghlLocationId string = ''

@secure()
@description('SQLAlchemy URL of RV3\'s own database. Stored in Key Vault when given; empty = citas-API-only mode.')
param rv3SqlUrl string = ''

@secure()
@description('ManyChat API key of the MiaSalud leads integration, or two comma-separated while rotating. Stored in Key Vault when given; empty = integration off.')
param manychatApiKeys string = ''

@secure()
@description('Key (32+ characters) the operations console signs its anti-forgery tokens with. Stored in Key Vault; by default a new one on each provision (a console form open during it then needs a reload).')
param consoleSigningKey string = newGuid()

@description('Client id of the operations console\'s Entra app registration (infra/scripts/console-app-registration.sh). Empty: App Service Authentication is not configured and the console refuses to serve pages.')
param consoleAuthClientId string = ''

@description('Base URL of MiaSalud\'s Odoo (https://<company>.odoo.com). Empty: no Odoo push, leads stay in SQL with odoo_sync_status pending.')
param odooUrl string = ''

@description('Odoo database name.')
param odooDb string = ''

@description('Login of the Odoo user the app pushes as (required with jsonrpc).')
param odooUsername string = ''

@secure()
@description('API key of that Odoo user (Odoo keys last at most 3 months). Stored in Key Vault when given.')
param odooApiKey string = ''

@description('GHL API base URL.')
param ghlBaseUrl string = 'https://services.leadconnectorhq.com'

@description('GHL marketplace host for the OAuth install flow (white-label: https://marketplace.leadconnectorhq.com).')
param ghlMarketplaceUrl string = 'https://marketplace.gohighlevel.com'

@description('Default timezone of a location.')
param timezone string = 'America/Lima'

@description('Timezone ManyChat\'s display dates are read in.')
param manychatTimezone string = 'America/Mexico_City'

@description('Region (ISO 3166 alpha-2) of phone numbers given without a country code.')
param defaultPhoneRegion string = 'MX'

@description('Default working hours of a location, local time.')
param workingHours string = '08:00-20:00'

@description('Minimum appointment length in minutes.')
param minDurationMin string = '15'

@description('Appointment length in minutes when only a start time is given.')
param defaultDurationMin string = '60'

@allowed(['strict', 'flexible'])
param validationMode string = 'strict'

@allowed(['latest_wins', 'rv3_wins', 'ghl_wins'])
param conflictPolicy string = 'latest_wins'

@description('NCRONTAB (6 fields, UTC) of the daily reconciliation; 06:00 UTC is 01:00 in Lima.')
param reconcileSchedule string = '0 0 6 * * *'

param reconcileWindowHours string = '24'

@allowed(['true', 'false'])
param reconcileAutoheal string = 'false'

@description('NCRONTAB (6 fields, UTC) of the poll of RV3\'s database for changes.')
param rv3PollSchedule string = '0 */1 * * * *'

@allowed(['jsonrpc', 'json2'])
@description('Odoo external API: json2 for Odoo 19+ (JSON-RPC is deprecated in 19 and removed in 22), jsonrpc for Odoo 18.')
param odooProtocol string = 'jsonrpc'

@allowed(['leads', 'contacts', 'both'])
@description('What is pushed to Odoo: leads (crm.lead only), contacts (res.partner only) or both.')
param odooSync string = 'both'

@description('Pace of the calls to Odoo, per second (Odoo publishes no rate limit).')
param odooRatePerS string = '5.0'

@allowed(['lead', 'opportunity'])
@description('Type of the crm.lead records created in Odoo.')
param odooLeadType string = 'opportunity'

@description('NCRONTAB (6 fields, UTC) of the daily SQL-Odoo reconciliation; 07:30 UTC is 01:30 in Mexico City.')
param odooReconcileSchedule string = '0 30 7 * * *'

@description('E-mail address that receives the alerts. Empty: alerts only show in the portal.')
param alertEmail string = ''

@description('Upper bound of Flex Consumption instances; it also bounds the load on SQL and GHL.')
param maximumInstanceCount int = 40

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = 'func-rv3ghl-${resourceToken}'
var deploymentContainerName = 'app-package'
var sqlDatabaseName = 'rv3sync'
var appQueues = ['rv3-to-ghl', 'ghl-to-rv3', 'reconcile', 'manychat-contact', 'manychat-campaign', 'odoo-push']
// Created up front (the host would create them on first failure) so poison counts work from day one.
var poisonQueues = [for queue in appQueues: '${queue}-poison']
var appTables = ['ghltokens', 'ghlratebudget', 'locks']
var secretNames = {
  ghlClientSecret: 'ghl-client-secret'
  ghlPrivateToken: 'ghl-private-token'
  rv3SqlUrl: 'rv3-sql-url'
  manychatApiKeys: 'manychat-api-keys'
  odooApiKey: 'odoo-api-key'
  consoleSigningKey: 'console-signing-key'
}
var deployerAsSqlAdminKind = principalType == 'ServicePrincipal' ? 'Application' : principalType
var sqlAdminKind = !empty(sqlAdminPrincipalType) ? sqlAdminPrincipalType : deployerAsSqlAdminKind

// App setting value that App Service resolves from Key Vault with the app's identity (versionless: latest).
func keyVaultReference(vaultUri string, secretName string) string => '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/${secretName})'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

// The one identity the app uses for storage, SQL, Key Vault and telemetry; roles in app/rbac.bicep.
module appIdentity 'br/public:avm/res/managed-identity/user-assigned-identity:0.6.0' = {
  name: 'appIdentity'
  scope: rg
  params: {
    name: 'id-rv3ghl-${resourceToken}'
    location: location
    tags: tags
  }
}

module plan 'br/public:avm/res/web/serverfarm:0.7.0' = {
  name: 'plan'
  scope: rg
  params: {
    name: 'plan-${resourceToken}'
    location: location
    tags: tags
    skuName: 'FC1'
    kind: 'functionapp'
    reserved: true
    zoneRedundant: false
  }
}

module storage 'br/public:avm/res/storage/storage-account:0.33.0' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    kind: 'StorageV2'
    skuName: 'Standard_LRS'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    publicNetworkAccess: 'Enabled'
    dnsEndpointType: 'Standard'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    blobServices: {
      containers: [
        { name: deploymentContainerName }
      ]
    }
    queueServices: {
      queues: [for queue in concat(appQueues, poisonQueues): { name: queue }]
    }
    tableServices: {
      tables: [for table in appTables: { name: table }]
    }
  }
}

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.16.1' = {
  name: 'logAnalytics'
  scope: rg
  params: {
    name: 'log-${resourceToken}'
    location: location
    tags: tags
    dataRetention: 30
  }
}

module monitoring 'br/public:avm/res/insights/component:0.8.0' = {
  name: 'monitoring'
  scope: rg
  params: {
    name: 'appi-${resourceToken}'
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    applicationType: 'web'
    kind: 'web'
    disableLocalAuth: true
    disableIpMasking: false
    retentionInDays: 90
  }
}

module keyVault 'br/public:avm/res/key-vault/vault:0.14.0' = {
  name: 'keyVault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    sku: 'standard'
    enableRbacAuthorization: true
    enableVaultForDeployment: false
    enableVaultForDiskEncryption: false
    enableVaultForTemplateDeployment: false
    enablePurgeProtection: false
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    // A secret left empty here is not written, so a value set later with `az keyvault secret set` survives.
    secrets: concat(
      empty(ghlClientSecret) ? [] : [{ name: secretNames.ghlClientSecret, value: ghlClientSecret }],
      empty(ghlPrivateToken) ? [] : [{ name: secretNames.ghlPrivateToken, value: ghlPrivateToken }],
      empty(rv3SqlUrl) ? [] : [{ name: secretNames.rv3SqlUrl, value: rv3SqlUrl }],
      empty(manychatApiKeys) ? [] : [{ name: secretNames.manychatApiKeys, value: manychatApiKeys }],
      empty(odooApiKey) ? [] : [{ name: secretNames.odooApiKey, value: odooApiKey }],
      empty(consoleSigningKey) ? [] : [{ name: secretNames.consoleSigningKey, value: consoleSigningKey }]
    )
  }
}

module sql 'app/sql.bicep' = {
  name: 'sql'
  scope: rg
  params: {
    name: 'sql-${resourceToken}'
    location: location
    tags: tags
    databaseName: sqlDatabaseName
    adminObjectId: !empty(sqlAdminObjectId) ? sqlAdminObjectId : principalId
    adminLogin: sqlAdminLogin
    adminPrincipalType: sqlAdminKind
    clientIpAddress: sqlClientIpAddress
    maxVCores: sqlMaxVCores
    autoPauseDelayMinutes: sqlAutoPauseDelayMinutes
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    location: location
    tags: tags
    planId: plan.outputs.resourceId
    identityId: appIdentity.outputs.resourceId
    identityClientId: appIdentity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.name
    sqlServerFqdn: sql.outputs.fullyQualifiedDomainName
    sqlDatabaseName: sqlDatabaseName
    sqlOdbcDriver: sqlOdbcDriver
    ghlClientSecretReference: keyVaultReference(keyVault.outputs.uri, secretNames.ghlClientSecret)
    ghlPrivateTokenReference: empty(ghlPrivateToken) ? '' : keyVaultReference(keyVault.outputs.uri, secretNames.ghlPrivateToken)
    rv3SqlUrlReference: empty(rv3SqlUrl) ? '' : keyVaultReference(keyVault.outputs.uri, secretNames.rv3SqlUrl)
    manychatApiKeysReference: empty(manychatApiKeys) ? '' : keyVaultReference(keyVault.outputs.uri, secretNames.manychatApiKeys)
    odooApiKeyReference: empty(odooApiKey) ? '' : keyVaultReference(keyVault.outputs.uri, secretNames.odooApiKey)
    consoleSigningKeyReference: keyVaultReference(keyVault.outputs.uri, secretNames.consoleSigningKey)
    ghlBaseUrl: ghlBaseUrl
    ghlMarketplaceUrl: ghlMarketplaceUrl
    ghlClientId: ghlClientId
    ghlLocationId: ghlLocationId
    timezone: timezone
    manychatTimezone: manychatTimezone
    defaultPhoneRegion: defaultPhoneRegion
    workingHours: workingHours
    minDurationMin: minDurationMin
    defaultDurationMin: defaultDurationMin
    validationMode: validationMode
    conflictPolicy: conflictPolicy
    reconcileSchedule: reconcileSchedule
    reconcileWindowHours: reconcileWindowHours
    reconcileAutoheal: reconcileAutoheal
    rv3PollSchedule: rv3PollSchedule
    odooUrl: odooUrl
    odooDb: odooDb
    odooUsername: odooUsername
    odooProtocol: odooProtocol
    odooSync: odooSync
    odooRatePerS: odooRatePerS
    odooLeadType: odooLeadType
    odooReconcileSchedule: odooReconcileSchedule
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  dependsOn: [
    rbac // Key Vault references and the identity-based host storage resolve only once the roles exist.
  ]
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.name
    keyVaultName: keyVault.outputs.name
    appPrincipalId: appIdentity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module consoleAuth 'app/console-auth.bicep' = if (!empty(consoleAuthClientId)) {
  name: 'consoleAuth'
  scope: rg
  params: {
    functionAppName: api.outputs.name
    clientId: consoleAuthClientId
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.resourceId
    alertEmail: alertEmail
  }
}

module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.resourceId
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output CONSOLE_URL string = '${api.outputs.uri}/api/console/'
output GHL_WEBHOOK_URL string = '${api.outputs.uri}/api/webhooks/ghl'
output GHL_REDIRECT_URI string = api.outputs.ghlRedirectUri
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_SQL_SERVER_NAME string = sql.outputs.name
output AZURE_SQL_SERVER_FQDN string = sql.outputs.fullyQualifiedDomainName
output AZURE_SQL_DATABASE_NAME string = sqlDatabaseName
output SQL_URL string = api.outputs.sqlUrl
output APP_IDENTITY_NAME string = appIdentity.outputs.name
output APP_IDENTITY_PRINCIPAL_ID string = appIdentity.outputs.principalId
output APP_IDENTITY_CLIENT_ID string = appIdentity.outputs.clientId
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.connectionString
