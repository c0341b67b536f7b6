"""Form fields shared by the credits pages (and notifications' settings)."""

from django import forms

from ..money import PLAIN_DECIMAL, PLAIN_INTEGER


class PlainIntegerField(forms.IntegerField):
    def to_python(self, value):
        if value not in self.empty_values and not PLAIN_INTEGER.fullmatch(str(value).strip()):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class PlainDecimalField(forms.DecimalField):
    def to_python(self, value):
        if value not in self.empty_values and not PLAIN_DECIMAL.fullmatch(str(value).strip()):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)
