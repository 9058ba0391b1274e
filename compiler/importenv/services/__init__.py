"""The services section of an imported spec, and the services whose settings need code of their own.

What every service has (enabled, version, replicas) is read the same way for each, from the env variables
its catalogue entry names (`catalog.Service.old_env`, compiler/importenv/services/section.py): a new service
with plain settings needs no code here. The builders below add a service's other settings (services.<name>.*),
registered by service name; each may return a `Skip` to leave the service out.
"""

from __future__ import annotations

from compiler.importenv.mapping import ServiceBuilder
from compiler.importenv.services import apps, central, materialization, segmentation

BUILDERS: dict[str, ServiceBuilder] = {
    "auth": central.auth,
    "infoservice": central.infoservice,
    "nglstate": central.nglstate,
    "materializationengine": materialization.materializationengine,
    "pychunkedgraph": segmentation.pychunkedgraph,
    "meshing": segmentation.meshing,
    "l2cache": segmentation.l2cache,
    "skeletoncache": apps.skeletoncache,
    "guidebook": apps.guidebook,
    "tourguide": apps.tourguide,
    "dash": apps.dash,
    "pmanagement": apps.pmanagement,
    "proxy": apps.proxy,
    "cavecanary": apps.cavecanary,
}
