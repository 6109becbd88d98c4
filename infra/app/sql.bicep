// Azure SQL logical server with Entra-only authentication and one serverless (auto-pausing) database.

param name string
param location string = resourceGroup().location
param tags object = {}
param databaseName string

@description('Object id of the Entra admin (user, group or service principal).')
param adminObjectId string

@description('Display name of the Entra admin.')
param adminLogin string

@allowed(['User', 'Group', 'Application'])
param adminPrincipalType string = 'User'

@description('Public IP allowed through the firewall for migrations and grants from a workstation. Empty: none.')
param clientIpAddress string = ''

param maxVCores int = 2
param autoPauseDelayMinutes int = 60

// 0.0.0.0 is Azure's "allow Azure services" rule: the Flex Consumption app has no fixed outbound IP.
// Entra-only auth means an address getting through the firewall still needs an Entra identity.
var azureServicesRule = { name: 'AllowAllWindowsAzureIps', startIpAddress: '0.0.0.0', endIpAddress: '0.0.0.0' }
var workstationRule = { name: 'deployer-workstation', startIpAddress: clientIpAddress, endIpAddress: clientIpAddress }
var firewallRules = empty(clientIpAddress) ? [azureServicesRule] : [azureServicesRule, workstationRule]

module server 'br/public:avm/res/sql/server:0.22.0' = {
  name: 'sqlServer'
  params: {
    name: name
    location: location
    tags: tags
    administrators: {
      administratorType: 'ActiveDirectory'
      azureADOnlyAuthentication: true
      login: adminLogin
      sid: adminObjectId
      principalType: adminPrincipalType
      tenantId: tenant().tenantId
    }
    minimalTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    firewallRules: firewallRules
    databases: [
      {
        name: databaseName
        sku: {
          name: 'GP_S_Gen5'
          tier: 'GeneralPurpose'
          family: 'Gen5'
          capacity: maxVCores
        }
        minCapacity: '0.5'
        autoPauseDelay: autoPauseDelayMinutes
        maxSizeBytes: 34359738368
        availabilityZone: -1
        zoneRedundant: false
        requestedBackupStorageRedundancy: 'Local'
      }
    ]
  }
}

output name string = server.outputs.name
output fullyQualifiedDomainName string = server.outputs.fullyQualifiedDomainName
