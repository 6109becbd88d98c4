// Log alert rules on the app's own telemetry, plus an optional e-mail action group.
//
// Contract with shared/telemetry: an alert condition is logged as an event named `alert.<kind>`
// (a trace whose message is that name, or a customEvent of that name) whose customDimensions carry
// `alert = <kind>`, plus `headroom` (rate_headroom_low) or `drift` (reconciliation_drift). Every
// finished reconciliation run logs `reconciliation.completed`; its absence is an alert of its own.

param location string = resourceGroup().location
param tags object = {}

@description('Resource id of the Application Insights component the app reports to.')
param applicationInsightsId string

@description('E-mail address that receives the alerts. Empty: no action group, alerts only show in the portal.')
param alertEmail string = ''

@description('Refused changes (validation errors) in 15 minutes above which the validation-spike alert fires.')
param validationSpikeThreshold int = 20

// The app logs each event as one JSON object in the message (what the Functions worker forwards), and, with the
// Azure Monitor exporter, also as customDimensions: read the event name and its dimensions from either.
var appEvents = 'union isfuzzy=true (traces | extend payload = parse_json(message) | project timestamp, name = coalesce(tostring(customDimensions.event), tostring(payload.event), message), customDimensions = bag_merge(payload, customDimensions)), (customEvents | project timestamp, name, customDimensions)'

var eventAlerts = [
  {
    kind: 'poison_message'
    severity: 2
    description: 'Un mensaje de sincronización agotó sus reintentos y pasó a la cola -poison.'
    condition: ''
  }
  {
    kind: 'webhook_failure'
    severity: 2
    description: 'Un webhook de GHL no pudo verificarse o encolarse.'
    condition: ''
  }
  {
    kind: 'token_refresh_failed'
    severity: 1
    description: 'No se pudo renovar el token OAuth de GHL de una sede: la sincronización de esa sede está detenida.'
    condition: ''
  }
  {
    kind: 'rate_headroom_low'
    severity: 3
    description: 'Quedan menos de 10 solicitudes en la ventana de límite de GHL de una sede.'
    condition: '| where todouble(customDimensions.headroom) < 10'
  }
  {
    kind: 'reconciliation_drift'
    severity: 2
    description: 'La conciliación diaria encontró citas distintas entre RV3 y GHL.'
    condition: '| where todouble(customDimensions.drift) > 0'
  }
  {
    kind: 'reconciliation_missed'
    severity: 1
    description: 'La conciliación programada no se ejecutó o falló.'
    condition: ''
  }
  {
    kind: 'manychat_event_lost'
    severity: 1
    description: 'Un evento de ManyChat no pudo encolarse ni guardarse en SQL: se respondió 503 y ManyChat no reintenta.'
    condition: ''
  }
  {
    kind: 'odoo_sync_failed'
    severity: 2
    description: 'Un registro de MiaSalud no pudo enviarse a Odoo tras sus reintentos y pasó a la cola -poison.'
    condition: ''
  }
  {
    kind: 'rv3_status_unmapped'
    severity: 2
    description: 'Citas de Reflexo V3 tienen un estado que la sincronización no conoce: su estado no llega a GHL. Asignarlo en PUT /api/rv3/statuses.'
    condition: ''
  }
  {
    kind: 'rv3_status_missing'
    severity: 2
    description: 'Reflexo V3 no tiene un estado para un cambio de GHL (p. ej. cancelada): el cambio no se escribió. Crear el estado y asignarlo en PUT /api/rv3/statuses.'
    condition: ''
  }
  {
    kind: 'odoo_auth_failed'
    severity: 1
    description: 'Odoo rechazó las credenciales de la app: API key vencida o incorrecta (las de Odoo duran como máximo 3 meses). Los envíos a Odoo están en pausa hasta corregirla.'
    condition: ''
  }
]

module actionGroup 'br/public:avm/res/insights/action-group:0.8.0' = if (!empty(alertEmail)) {
  name: 'alertActionGroup'
  params: {
    name: 'ag-rv3-ghl-sync'
    groupShortName: 'rv3ghlsync'
    location: 'global'
    tags: tags
    emailReceivers: [
      {
        name: 'operaciones'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

var actions = empty(alertEmail) ? {} : { actionGroupResourceIds: [actionGroup!.outputs.resourceId] }

module eventAlertRules 'br/public:avm/res/insights/scheduled-query-rule:0.6.0' = [
  for alert in eventAlerts: {
    name: 'alert-${replace(alert.kind, '_', '-')}'
    params: {
      name: 'alert-${replace(alert.kind, '_', '-')}'
      location: location
      tags: tags
      alertDescription: alert.description
      severity: alert.severity
      scopes: [applicationInsightsId]
      evaluationFrequency: 'PT5M'
      windowSize: 'PT5M'
      autoMitigate: true
      actions: actions
      criterias: {
        allOf: [
          {
            query: '${appEvents} | where name == "alert.${alert.kind}" or tostring(customDimensions.alert) == "${alert.kind}" ${alert.condition}'
            timeAggregation: 'Count'
            operator: 'GreaterThan'
            threshold: 0
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
    }
  }
]

// One refused change is the front desk's typo; many in a short time is a broken client or a rule changed on GHL's
// side. Every refusal is logged as a `validation.rejected` event (source api or ghl, its error code).
module validationSpikeRule 'br/public:avm/res/insights/scheduled-query-rule:0.6.0' = {
  name: 'alert-validation-spike'
  params: {
    name: 'alert-validation-spike'
    location: location
    tags: tags
    alertDescription: 'Muchas citas rechazadas por datos inválidos en poco tiempo (API o GHL): revisar el cliente o las reglas del calendario.'
    severity: 2
    scopes: [applicationInsightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    actions: actions
    criterias: {
      allOf: [
        {
          query: '${appEvents} | where name == "validation.rejected"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: validationSpikeThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
  }
}

// A dead timer or a stopped app logs nothing, so a missed run is also caught by the lack of a
// `reconciliation.completed` event in the last 26 hours (daily schedule plus two hours of grace).
module reconciliationHeartbeatRule 'br/public:avm/res/insights/scheduled-query-rule:0.6.0' = {
  name: 'alert-reconciliation-heartbeat'
  params: {
    name: 'alert-reconciliation-heartbeat'
    location: location
    tags: tags
    alertDescription: 'No hay registro de una conciliación terminada en las últimas 26 horas.'
    severity: 1
    scopes: [applicationInsightsId]
    evaluationFrequency: 'PT1H'
    windowSize: 'P1D'
    queryTimeRange: 'P2D'
    autoMitigate: true
    actions: actions
    criterias: {
      allOf: [
        {
          query: '${appEvents} | where name == "reconciliation.completed" and timestamp > ago(26h)'
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
  }
}
