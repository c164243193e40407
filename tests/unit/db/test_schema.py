"""The alembic revisions build the tables the models describe, on every database."""

from alembic import autogenerate
from alembic import migration as alembic_migration
import pytest

from tests import fixtures as vfix
from vmmig.db import api as db
from vmmig.db import models
from vmmig.db import schema


@pytest.mark.parametrize('backend', vfix.BACKENDS)
def test_revisions_match_the_models(backend):
    database = vfix.DatabaseFixture(backend)
    database.setUp()
    conf = vfix.ConfFixture(database.url)
    conf.setUp()
    try:
        schema.sync()
        with db.get_engine().connect() as connection:
            context = alembic_migration.MigrationContext.configure(
                connection, opts={'compare_type': False})
            differences = autogenerate.compare_metadata(context, models.Base.metadata)
        assert differences == []
    finally:
        conf.cleanUp()
        database.cleanUp()
