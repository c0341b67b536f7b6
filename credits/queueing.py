"""`enqueue`: hand a Celery task to the broker by its registered name, logging (not raising)
when the broker is down.

By name, so that a service can enqueue its own app's task without importing the tasks
module that imports it. The task is looked up in the current Celery app (config.celery
makes it current when Django starts) and started with `.delay()`, which honours
CELERY_TASK_ALWAYS_EAGER.
"""

import logging

from celery import current_app

logger = logging.getLogger(__name__)


def _task(name: str):
    tasks = current_app.tasks
    if name not in tasks:
        # Autodiscovery of the apps' tasks modules runs when the worker starts; any other
        # process (the web server, a management command) runs it on first use.
        current_app.loader.import_default_modules()
    return tasks[name]


def enqueue(task_name: str, *args) -> bool:
    """Start the task `task_name` with `args`; False when it could not be handed over (the
    broker is down, or under eager mode the task failed): the caller's sweep picks it up
    again later."""
    task = _task(task_name)
    try:
        task.delay(*args)
    except Exception:  # noqa: BLE001 - the broker, or an eager task's final failure
        logger.warning("could not enqueue %s%r", task_name, args, exc_info=True)
        return False
    return True
