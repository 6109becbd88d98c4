"""What the console says to staff, in Spanish: the names of states, origins, queues and the notices after an action."""

from __future__ import annotations

NAV = (
    ("citas", "Citas", "/api/console/citas"),
    ("revision", "Por revisar", "/api/console/revision"),
    ("conciliacion", "Conciliación", "/api/console/conciliacion"),
    ("mensajes", "Mensajes atascados", "/api/console/mensajes"),
    ("salud", "Salud", "/api/console/salud"),
)

SYNC_STATES = {
    "pending": "Pendiente",
    "synced": "Sincronizada",
    "error": "Falló",
    "local_only": "Solo local",
}
SYNC_HELP = {
    "pending": "Va en camino a GoHighLevel.",
    "synced": "GoHighLevel tiene la cita al día.",
    "error": "GoHighLevel no tiene esta versión de la cita.",
    "local_only": "Se canceló antes de llegar a GoHighLevel: no hay nada que enviar.",
}
STATUSES = {
    "scheduled": "Programada",
    "confirmed": "Confirmada",
    "cancelled": "Cancelada",
    "attended": "Asistió",
    "no_show": "No asistió",
}
ORIGINS = {"rv3": "Reflexo V3", "ghl": "GoHighLevel"}
CHANGES = {
    "create": "Crear en GoHighLevel",
    "update": "Actualizar en GoHighLevel",
    "cancel": "Cancelar en GoHighLevel",
    "retry": "Reintento pedido por el personal",
    "sync": "Sincronizar con GoHighLevel",
}
CHANGE_STATUSES = {"pending": "Por enviar", "dispatched": "En cola", "done": "Hecho", "failed": "Falló"}
ROLES = {"operator": "Operador", "viewer": "Lector"}

NOTICES = {
    "reintento": "Reintento enviado: la cita vuelve a sincronizarse con GoHighLevel.",
    "resuelta": "Reserva asignada al paciente: la cita se crea en Reflexo V3.",
    "reenviados": "Mensajes devueltos a su cola: el sistema los procesa de nuevo.",
    "conciliacion": "Conciliación iniciada: el informe se completa en unos momentos.",
}
