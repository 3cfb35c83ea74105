"""images: uploads, visibility, versions by name, minimum memory

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    # 0001 left the unique constraint on name unnamed: PostgreSQL calls it images_name_key; on
    # SQLite the batch's naming convention gives the reflected one a name to drop it by.
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("images_name_key", "images", type_="unique")
    with op.batch_alter_table("images", recreate="auto",
                              naming_convention={"uq": "uq_%(table_name)s_%(column_0_name)s"}) as batch:
        if op.get_bind().dialect.name != "postgresql":
            batch.drop_constraint("uq_images_name", type_="unique")
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("visibility", sa.String(length=8), nullable=False, server_default="public"))
        batch.add_column(sa.Column("scope", sa.String(length=32), nullable=False, server_default="public"))
        batch.add_column(sa.Column("user_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("project_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("state", sa.String(length=16), nullable=False, server_default="active"))
        batch.add_column(sa.Column("min_memory_mib", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("checksum", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("file_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("reason", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
        batch.create_unique_constraint("uq_image_name_scope_version", ["name", "scope", "version"])


def downgrade():
    with op.batch_alter_table("images") as batch:
        batch.drop_constraint("uq_image_name_scope_version", type_="unique")
        for column in ("updated_at", "reason", "file_bytes", "checksum", "min_memory_mib", "state",
                       "project_id", "user_id", "scope", "visibility", "version"):
            batch.drop_column(column)
        batch.create_unique_constraint("images_name_key", ["name"])
