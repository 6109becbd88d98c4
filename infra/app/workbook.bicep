// An Azure Monitor workbook for the engineer: the console's health, drift and failure views over Application
// Insights. It reads the same telemetry the alert rules do (see alerts.bicep for the contract with
// shared/telemetry): GHL and Odoo calls are dependencies named `GHL <method> <path>` / `Odoo <label>`, queue and
// HTTP invocations are requests, and the app's events (`alert.<kind>`, `reconciliation.completed`,
// `validation.rejected`, `ghl.call_failed`) are traces or customEvents with their dimensions.

param location string = resourceGroup().location
param tags object = {}

@description('Resource id of the Application Insights component the app reports to.')
param applicationInsightsId string

// The app's events from either form the telemetry takes (the same expression as the alert rules').
var appEvents = 'union isfuzzy=true (traces | extend payload = parse_json(message) | project timestamp, name = coalesce(tostring(customDimensions.event), tostring(payload.event), message), customDimensions = bag_merge(payload, customDimensions)), (customEvents | project timestamp, name, customDimensions)'

var calls = [
  {
    name: 'ghl-calls'
    title: 'Llamadas a GoHighLevel: % de éxito y latencia p95 (ms)'
    prefix: 'GHL '
  }
  {
    name: 'odoo-calls'
    title: 'Llamadas a Odoo: % de éxito y latencia p95 (ms)'
    prefix: 'Odoo '
  }
]

var callItems = [
  for call in calls: {
    type: 3
    name: call.name
    content: {
      version: 'KqlItem/1.0'
      title: call.title
      query: 'dependencies | where name startswith "${call.prefix}" | summarize total = count(), fallidas = countif(success == false), p95_ms = percentile(duration, 95) by bin(timestamp, {TimeRange:grain}) | extend exito_pct = round(100.0 * (total - fallidas) / total, 1) | project timestamp, exito_pct, p95_ms'
      queryType: 0
      resourceType: 'microsoft.insights/components'
      timeContextFromParameter: 'TimeRange'
      visualization: 'timechart'
      size: 0
    }
  }
]

var eventItems = [
  {
    type: 3
    name: 'alerts'
    content: {
      version: 'KqlItem/1.0'
      title: 'Alertas por tipo'
      query: '${appEvents} | where name startswith "alert." | summarize alertas = count() by tipo = name, bin(timestamp, {TimeRange:grain})'
      queryType: 0
      resourceType: 'microsoft.insights/components'
      timeContextFromParameter: 'TimeRange'
      visualization: 'barchart'
      size: 0
    }
  }
  {
    type: 3
    name: 'reconciliation-drift'
    content: {
      version: 'KqlItem/1.0'
      title: 'Conciliación: diferencias por sede y día'
      query: '${appEvents} | where name == "reconciliation.completed" | summarize diferencias = max(todouble(customDimensions.drift)), corridas = count() by sede = tostring(customDimensions.location_id), dia = startofday(timestamp) | order by dia desc, sede asc'
      queryType: 0
      resourceType: 'microsoft.insights/components'
      timeContextFromParameter: 'TimeRange'
      visualization: 'table'
      size: 0
    }
  }
  {
    type: 3
    name: 'poison'
    content: {
      version: 'KqlItem/1.0'
      title: 'Mensajes que agotaron sus reintentos (colas -poison)'
      query: '${appEvents} | where name == "alert.poison_message" | summarize mensajes = count(), ultimo = max(timestamp) by cola = tostring(customDimensions.queue), motivo = tostring(customDimensions.detail) | order by ultimo desc'
      queryType: 0
      resourceType: 'microsoft.insights/components'
      timeContextFromParameter: 'TimeRange'
      visualization: 'table'
      size: 0
    }
  }
  {
    type: 3
    name: 'failures'
    content: {
      version: 'KqlItem/1.0'
      title: 'Fallos por operación y código'
      query: '${appEvents} | where name in ("ghl.call_failed", "validation.rejected") or tostring(customDimensions.success) == "false" | summarize fallos = count(), ultimo = max(timestamp) by operacion = tostring(customDimensions.operation), codigo = tostring(customDimensions.error_code) | top 25 by fallos'
      queryType: 0
      resourceType: 'microsoft.insights/components'
      timeContextFromParameter: 'TimeRange'
      visualization: 'table'
      size: 0
    }
  }
  {
    type: 3
    name: 'invocations'
    content: {
      version: 'KqlItem/1.0'
      title: 'Funciones: ejecuciones y fallos'
      query: 'requests | summarize ejecuciones = count(), fallidas = countif(success == false), p95_ms = percentile(duration, 95) by funcion = operation_Name | order by fallidas desc, ejecuciones desc'
      queryType: 0
      resourceType: 'microsoft.insights/components'
      timeContextFromParameter: 'TimeRange'
      visualization: 'table'
      size: 0
    }
  }
  {
    type: 3
    name: 'rate-headroom'
    content: {
      version: 'KqlItem/1.0'
      title: 'Margen del límite de GHL por sede (avisos de margen bajo)'
      query: '${appEvents} | where name == "alert.rate_headroom_low" | summarize avisos = count(), margen_minimo = min(todouble(customDimensions.headroom)) by sede = tostring(customDimensions.location_id), bin(timestamp, {TimeRange:grain})'
      queryType: 0
      resourceType: 'microsoft.insights/components'
      timeContextFromParameter: 'TimeRange'
      visualization: 'table'
      size: 0
    }
  }
]

var header = [
  {
    type: 1
    name: 'title'
    content: {
      json: '## rv3-ghl-sync\nSalud de la sincronización (Reflexo V3 ⇄ GoHighLevel y MiaSalud → Odoo): llamadas, colas, conciliación y fallos. Las acciones (reintentar, corregir, reenviar) están en la consola: `/api/console/`.'
    }
  }
  {
    type: 9
    name: 'parameters'
    content: {
      version: 'KqlParameterItem/1.0'
      parameters: [
        {
          id: 'time-range'
          version: 'KqlParameterItem/1.0'
          name: 'TimeRange'
          label: 'Periodo'
          type: 4
          isRequired: true
          value: {
            durationMs: 86400000
          }
          typeSettings: {
            allowCustom: true
            selectableValues: [
              { durationMs: 3600000 }
              { durationMs: 86400000 }
              { durationMs: 604800000 }
              { durationMs: 2592000000 }
            ]
          }
        }
      ]
    }
  }
]

var content = {
  version: 'Notebook/1.0'
  items: concat(header, callItems, eventItems)
  fallbackResourceIds: [applicationInsightsId]
  '$schema': 'https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json'
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, 'rv3-ghl-sync-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'rv3-ghl-sync: salud, conciliación y fallos'
    category: 'workbook'
    sourceId: applicationInsightsId
    serializedData: string(content)
  }
}

output workbookId string = workbook.id
