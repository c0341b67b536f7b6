import importlib

from django.core.management.base import BaseCommand

from credits import demo
from credits.models import Organization

# Each app's demo step, in dependency order; an app without a demo module is skipped.
STEPS = [
    "credits.demo_licenses",
    "credits.demo_billing",
    "usage.demo",
    "usage.demo_direct_routing",
    "usage.demo_microsoft",
]


class Command(BaseCommand):
    help = "Seed the demo organization `contoso` (idempotent); prints the demo sign-in last."

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing but print the sign-in when any organization already exists",
        )

    def handle(self, *args, **opts):
        if opts["if_empty"] and Organization.objects.exists():
            self.stdout.write("the database already has data; not seeding")
        else:
            org = demo.seed(self.stdout)
            for module_name in STEPS:
                try:
                    module = importlib.import_module(module_name)
                except ModuleNotFoundError as exc:
                    if exc.name != module_name:
                        raise
                    continue
                module.seed(org, self.stdout)
        self.stdout.write(f"email: {demo.DEMO_ADMIN_EMAIL}")
        self.stdout.write(f"password: {demo.DEMO_PASSWORD}")
