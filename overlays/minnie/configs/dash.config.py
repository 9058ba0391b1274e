# Generated from compiler/templates/dash/config.py.j2; do not edit.
import importlib
import os


def _factory(dotted_path):
    module_name, _, attribute = dotted_path.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


SECRET_KEY = os.environ["SECRET_KEY"]

# datastack -> app name -> {"create_app": dotted path of the app factory, "config": app config}
dash_apps = {
    'minnie65_public': {
        'cell_types': {
            "create_app": 'dash_apps.celltype.create_app',
            "config": {'cell_type_table': 'aibs_metamodel_celltypes_v661', 'valence_map': {'E': 'excitatory', 'I': 'inhibitory'}},
        },
    },
}

DASH_DATASTACK_SUPPORT = {
    datastack: {
        app_name: {"create_app": _factory(app["create_app"]), "config": app["config"]}
        for app_name, app in apps.items()
    }
    for datastack, apps in dash_apps.items()
}
