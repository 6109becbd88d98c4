// App Service Authentication (Easy Auth) with Entra ID in front of the operations console (/api/console).
//
// Anonymous requests are let through (AllowAnonymous): the JSON API keeps its function keys, GHL's webhooks and
// ManyChat their own checks, and the console itself sends a visitor who is not signed in to /.auth/login/aad. For
// every request the platform validates the Entra session, passes the signed-in user to the app in
// X-MS-CLIENT-PRINCIPAL (claims, incl. the app roles Console.Operator / Console.Viewer) and removes any such header
// a client sent. Sign-in uses the OpenID Connect implicit flow (ID token, no client secret to keep): the app
// registration (infra/scripts/console-app-registration.sh) enables ID tokens and declares the roles.

@description('Name of the function app the console is served by.')
param functionAppName string

@description('Application (client) id of the console\'s Entra app registration.')
param clientId string

@description('Entra tenant the staff sign in with.')
param tenantId string = tenant().tenantId

resource site 'Microsoft.Web/sites@2023-12-01' existing = {
  name: functionAppName
}

resource authSettings 'Microsoft.Web/sites/config@2023-12-01' = {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
    }
    login: {
      tokenStore: {
        enabled: false
      }
      preserveUrlFragmentsForLogins: false
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
          clientId: clientId
        }
        validation: {
          allowedAudiences: [
            clientId
            'api://${clientId}'
          ]
        }
      }
    }
  }
}
