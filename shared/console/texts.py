"""What the console says to staff, in Spanish: the names of states, origins, queues and the notices after an action."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.poison import PoisonMessage

NAV = (
    ("citas", "Citas", "/api/console/citas"),
    ("revision", "Por revisar", "/api/console/revision"),
    ("conciliacion", "Conciliación", "/api/console/conciliacion"),
    ("mensajes", "Mensajes atascados", "/api/console/mensajes"),
    ("miasalud", "MiaSalud", "/api/console/miasalud"),
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
# What the sync made of a GHL webhook about the cita's event (sync_core.protocol.Decision, and the intake's own).
GHL_OUTCOMES = {
    "echo": "Eco de un cambio nuestro (no es un cambio nuevo)",
    "ghl_won": "Cambio hecho en GoHighLevel: aplicado",
    "local_won": "Cambio en GoHighLevel más antiguo que el de la clínica: se le reenvió el de la clínica",
    "stale": "Cambio antiguo de GoHighLevel: ignorado",
    "same": "Sin diferencias con la clínica",
    "known": "Ya conocido (reenvío de GoHighLevel)",
    "deleted": "Eliminada en GoHighLevel: cancelada",
    "already_deleted": "Eliminada en GoHighLevel (ya estaba cancelada)",
    "created": "Creada en GoHighLevel",
    "duplicate": "Evento duplicado en GoHighLevel: eliminado",
    "failed": "No se pudo aplicar",
}
WINNERS = {"rv3": "la clínica (Reflexo V3)", "ghl": "GoHighLevel", "local": "la clínica", "sync": "la clínica"}
ROLES = {"operator": "Operador", "viewer": "Lector"}

NOTICES = {
    "reintento": "Reintento enviado: la cita vuelve a sincronizarse con GoHighLevel.",
    "resuelta": "Reserva asignada al paciente: la cita se crea en Reflexo V3.",
    "reenviados": "Mensajes devueltos a su cola: el sistema los procesa de nuevo.",
    "conciliacion": "Conciliación iniciada: el informe se completa en unos momentos.",
    "odoo": "El lead vuelve a enviarse a Odoo.",
    "reenvio_incompleto": "Algunos mensajes no se pudieron reenviar (ya no estaban en la cola); revise la lista.",
}
QUEUES = {
    "rv3-to-ghl": "Cambios de citas hacia GoHighLevel",
    "ghl-to-rv3": "Cambios que llegan de GoHighLevel (webhooks)",
    "reconcile": "Conciliaciones diarias",
    "manychat-contact": "Leads de ManyChat (MiaSalud)",
    "manychat-campaign": "Asignaciones de campaña de ManyChat (MiaSalud)",
    "odoo-push": "Envíos a Odoo (MiaSalud)",
}


def poison_message(message: PoisonMessage) -> dict[str, Any]:
    """What a stuck message is about, by its ids only (never the personal data a body may carry)."""
    body = message.body()
    if not isinstance(body, dict):
        about = "Mensaje dañado: no es JSON válido."
    elif "appointment_id" in body:
        operation = CHANGES.get(str(body.get("operation")), "Sincronizar con GoHighLevel")
        about = f"Cita {body['appointment_id']}: {operation}"
    elif "run_id" in body:
        about = f"Conciliación de la sede {body.get('location_id', '?')}"
    elif "type" in body:
        about = f"Webhook de GoHighLevel {body['type']}"
    else:
        about = message.summary()
    return {
        "id": message.id,
        "inserted_on": message.inserted_on,
        "about": about,
        "appointment_id": body.get("appointment_id") if isinstance(body, dict) else None,
    }


RUN_STATUSES = {"queued": "En cola", "running": "En curso", "completed": "Terminada", "failed": "Falló"}
FIELDS = {
    "title": "Título",
    "start": "Inicio",
    "end": "Fin",
    "status": "Estado",
    "calendar_id": "Calendario",
    "contact_id": "Contacto",
    "assigned_user_id": "Asignada a",
    "notes": "Notas",
}
HEALS = {"conciliar": "Corregido con lo que dice GoHighLevel", "enviar_a_ghl": "Enviado a GoHighLevel"}
FINDINGS = {
    "faltantes_local": "Solo en GoHighLevel",
    "faltantes_ghl": "Solo en Reflexo V3 (no llegó a GoHighLevel)",
    "canceladas_no_actualizadas": "Cancelada en un solo lado",
    "desincronizadas": "Datos distintos",
}
CHECKS = {
    "settings": "Configuración",
    "sql": "Base de datos",
    "storage": "Colas y tablas (Azure Storage)",
    "reconciliation": "Conciliación diaria",
}


def check_label(name: str) -> str:
    """A readiness check's name for staff (`ghl:<location>` is the GHL token of that location)."""
    if name.startswith("ghl:"):
        return f"Acceso a GoHighLevel · sede {name.removeprefix('ghl:')}"
    return CHECKS.get(name, name)


ODOO_STATES = {"pending": "Pendiente", "success": "En Odoo", "error": "Falló", "skipped": "No se envía"}
