// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import pulumi from '@pulumi/eslint-plugin';

export default tseslint.config(
  { ignores: ['**/node_modules/**', 'service/dist/**', 'admin/dist/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    // The Pulumi program: catch Outputs used in template strings or as plain values.
    files: ['index.ts', 'components/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { '@pulumi': pulumi },
    rules: {
      '@pulumi/no-output-in-template-literal': 'error',
      '@pulumi/no-output-instance-in-template-literal': 'error',
    },
  },
);
