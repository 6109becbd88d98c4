// The function app on Flex Consumption (Python 3.11) and its app settings, one for one with SPEC §5.

@description('Function app name; its host name carries the webhook and OAuth callback URLs.')
param name string
param location string = resourceGroup().location
param tags object = {}
param planId string
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param sqlServerFqdn string
param sqlDatabaseName string

@description('ODBC driver the SQL_URL names; it must be installed in the Functions Python image.')
param sqlOdbcDriver string = 'ODBC Driver 18 for SQL Server'

@description('Key Vault reference (@Microsoft.KeyVault(SecretUri=...)) of the GHL client secret.')
param ghlClientSecretReference string

@description('Key Vault reference of the GHL private integration token; empty when OAuth mode is used.')
param ghlPrivateTokenReference string = ''

@description('Key Vault reference of RV3\'s database URL; empty for citas-API-only mode.')
param rv3SqlUrlReference string = ''

@description('Key Vault reference of the ManyChat API keys; empty while the MiaSalud leads integration is off.')
param manychatApiKeysReference string = ''

@description('Key Vault reference of the Odoo API key; empty while there is no Odoo to push to.')
param odooApiKeyReference string = ''

@description('Key Vault reference of the key the operations console signs its anti-forgery tokens with.')
param consoleSigningKeyReference string

param ghlBaseUrl string
param ghlMarketplaceUrl string
param ghlClientId string
param ghlLocationId string
param timezone string
param manychatTimezone string
param defaultPhoneRegion string
param workingHours string
param minDurationMin string
param defaultDurationMin string
param validationMode string
param conflictPolicy string
param reconcileSchedule string
param reconcileWindowHours string
param reconcileAutoheal string
param rv3PollSchedule string
param odooUrl string
param odooDb string
param odooUsername string
param odooProtocol string
param odooSync string
param odooRatePerS string
param odooLeadType string
param odooReconcileSchedule string
param maximumInstanceCount int = 40
param instanceMemoryMB int = 2048

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var uri = 'https://${name}.azurewebsites.net'
var ghlRedirectUri = '${uri}/api/ghl/oauth/callback'
var sqlUrl = 'mssql+pyodbc://@${sqlServerFqdn}:1433/${sqlDatabaseName}?driver=${replace(sqlOdbcDriver, ' ', '+')}&Encrypt=yes'

// FUNCTIONS_WORKER_RUNTIME is deliberately absent: Flex Consumption rejects it as an app setting and
// takes the runtime from functionAppConfig.runtime below. An empty value leaves the app its own default
// (GHL's published webhook keys, private-token mode off, citas-API-only mode, MiaSalud leads off, no Odoo push).
var appSettings = {
  AzureWebJobsStorage__accountName: storage.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  AZURE_CLIENT_ID: identityClientId
  SQL_URL: sqlUrl
  SQL_AUTH: 'entra'
  RV3_SQL_URL: rv3SqlUrlReference
  GHL_BASE_URL: ghlBaseUrl
  GHL_MARKETPLACE_URL: ghlMarketplaceUrl
  GHL_CLIENT_ID: ghlClientId
  GHL_CLIENT_SECRET: ghlClientSecretReference
  GHL_REDIRECT_URI: ghlRedirectUri
  GHL_PRIVATE_TOKEN: ghlPrivateTokenReference
  GHL_LOCATION_ID: ghlLocationId
  GHL_WEBHOOK_ED25519_KEY: ''
  GHL_WEBHOOK_RSA_KEY: ''
  GHL_WEBHOOK_VERIFY: 'true'
  // The app's work is I/O (GHL, SQL, storage): more worker threads than the default (cpu + 4), so HTTP requests
  // are not stuck behind queue messages waiting for GHL's rate budget.
  PYTHON_THREADPOOL_THREAD_COUNT: '32'
  // The host refuses a larger request body (413) before the app sees it, instead of buffering up to its 100 MB
  // default: the largest body the app takes is 64 KB (API) and GHL's webhooks are a few KB (app cap 32 KB).
  FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '1048576'
  // GHL's documented limits per app and location; lower them only to share a location with another app.
  GHL_RATE_LIMIT_MAX: '100'
  GHL_RATE_LIMIT_INTERVAL_MS: '10000'
  GHL_RATE_LIMIT_DAILY: '200000'
  TIMEZONE: timezone
  WORKING_HOURS: workingHours
  MIN_DURATION_MIN: minDurationMin
  DEFAULT_DURATION_MIN: defaultDurationMin
  VALIDATION_MODE: validationMode
  CONFLICT_POLICY: conflictPolicy
  RECONCILE_SCHEDULE: reconcileSchedule
  RECONCILE_WINDOW_HOURS: reconcileWindowHours
  RECONCILE_AUTOHEAL: reconcileAutoheal
  RV3_POLL_SCHEDULE: rv3PollSchedule
  RV3_SWEEP_SECONDS: '300'  // how often linked RV3 rows are read again (hard deletes, update_fields edits)
  MANYCHAT_API_KEYS: manychatApiKeysReference
  MANYCHAT_TIMEZONE: manychatTimezone
  DEFAULT_PHONE_REGION: defaultPhoneRegion
  ODOO_URL: odooUrl
  ODOO_DB: odooDb
  ODOO_USERNAME: odooUsername
  ODOO_API_KEY: odooApiKeyReference
  ODOO_PROTOCOL: odooProtocol
  ODOO_SYNC: odooSync
  ODOO_RATE_PER_S: odooRatePerS
  ODOO_LEAD_TYPE: odooLeadType
  ODOO_RECONCILE_SCHEDULE: odooReconcileSchedule
  // The operations console: staff sign in with Entra ID (App Service Authentication, console-auth.bicep); the
  // development sign-in is refused in Azure.
  CONSOLE_SIGNING_KEY: consoleSigningKeyReference
  CONSOLE_DEV_SIGNIN: 'false'
}

module functionApp 'br/public:avm/res/web/site:0.24.0' = {
  name: 'functionApp'
  params: {
    name: name
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    kind: 'functionapp,linux'
    serverFarmResourceId: planId
    httpsOnly: true
    clientAffinityEnabled: false
    managedIdentities: {
      userAssignedResourceIds: [identityId]
    }
    keyVaultAccessIdentityResourceId: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      alwaysOn: false
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    basicPublishingCredentialsPolicies: [
      { name: 'ftp', allow: false }
      { name: 'scm', allow: false }
    ]
    configs: [
      {
        name: 'appsettings'
        // Infra is the source of truth: a provision replaces whatever was edited in the portal.
        retainCurrentAppSettings: false
        properties: appSettings
      }
    ]
  }
}

output name string = functionApp.outputs.name
output uri string = uri
output ghlRedirectUri string = ghlRedirectUri
output sqlUrl string = sqlUrl
